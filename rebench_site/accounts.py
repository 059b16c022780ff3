"""Accounts: the password change and reset pages, the login lockout page, and forced resets.

Login throttling itself is django-axes (settings: LOGIN_*): every password check goes through
authenticate(), which axes refuses for a locked-out username or address. This module adds what the
site shows around it, and makes the one password check Django does outside authenticate() (the old
password on the password change page) go through it too.
"""

from __future__ import annotations

import logging
import math
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordChangeForm, PasswordResetForm
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

logger = logging.getLogger(__name__)

SITE_NAME = "RE-Bench trials"


# --- The lockout page ---


@dataclass(frozen=True)
class Lock:
    """What is locked (the username, the address, or both) and until when (None: not known)."""

    username: bool
    address: bool
    until: datetime | None


def current_lock(request: HttpRequest, credentials: dict[str, Any] | None) -> Lock:
    from axes.helpers import get_client_username
    from axes.models import AccessAttempt

    limit = settings.AXES_FAILURE_LIMIT
    window = settings.AXES_COOLOFF_TIME
    recent = AccessAttempt.objects.filter(attempt_time__gte=timezone.now() - window)
    keys = {
        "username": get_client_username(request, credentials),
        "ip_address": getattr(request, "axes_ip_address", None),
    }
    locked: dict[str, datetime | None] = {}
    for parameter, value in keys.items():
        if parameter not in settings.AXES_LOCKOUT_PARAMETERS or value is None:
            continue
        counts = recent.filter(**{parameter: value}).aggregate(
            failures=Sum("failures_since_start"), last=Max("attempt_time")
        )
        if (counts["failures"] or 0) >= limit:
            # The newest failure is the last to leave the window: no later than then plus the window.
            locked[parameter] = counts["last"] + window if counts["last"] else None
    ends = [until for until in locked.values() if until is not None]
    return Lock(username="username" in locked, address="ip_address" in locked, until=max(ends) if ends else None)


def login_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """AXES_USERNAME_CALLABLE: the username a try names, as axes would take it, cut to what its table holds.

    Django's login form doesn't enforce the username's length, so a 300-character name reaches
    authenticate(), and axes' record of the failure would fail to save (a 500 on PostgreSQL).
    No real username is that long, so cutting it changes no lock.
    """
    from axes.conf import settings as axes_settings  # Django's settings, with axes' defaults filled in
    from axes.models import AccessAttempt

    field = str(axes_settings.AXES_USERNAME_FORM_FIELD)
    username = credentials.get(field) if credentials else request.POST.get(field)
    if not isinstance(username, str):
        return None
    return username[: AccessAttempt._meta.get_field("username").max_length]


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the page a locked-out login gets (429, with Retry-After).

    Axes' async middleware passes the credentials where the original response belongs; the ones
    axes stored on the request are used instead, whichever way it was called.
    """
    stored = getattr(request, "axes_credentials", None)
    lock = current_lock(request, stored if isinstance(stored, dict) else None)
    window_minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    if lock.until is not None:
        seconds = max(1, math.ceil((lock.until - timezone.now()).total_seconds()))
    else:
        seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    from axes.conf import settings as axes_settings  # Django's settings, with axes' defaults filled in

    status = axes_settings.AXES_HTTP_RESPONSE_CODE
    if _wants_json(request):
        response: HttpResponse = JsonResponse(
            {
                "detail": "Too many failed logins: try again later.",
                "retry_after_seconds": seconds,
                "locked": [name for name, on in (("username", lock.username), ("address", lock.address)) if on],
            },
            status=status,
        )
    else:
        context = {
            "lock": lock,
            "minutes_left": max(1, math.ceil(seconds / 60)),
            "window_minutes": window_minutes,
            "failure_limit": settings.AXES_FAILURE_LIMIT,
        }
        response = render(request, "registration/locked_out.html", context, status=status)
    response["Retry-After"] = str(seconds)
    return response


def _wants_json(request: HttpRequest) -> bool:
    if request.path.startswith("/api/") or request.headers.get("x-requested-with") == "XMLHttpRequest":
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


# --- Password change ---


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """Checks the old password through authenticate(), so guesses count towards the login lockout.

    Django's form compares it directly, which would let whoever holds a stolen session guess the
    password behind it without limit.
    """

    def __init__(self, user: User, *args: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
        self.request = request
        super().__init__(user, *args, **kwargs)

    def clean_old_password(self) -> str:
        old_password: str = self.cleaned_data["old_password"]
        checked = authenticate(self.request, username=self.user.get_username(), password=old_password)
        if checked is None or checked.pk != self.user.pk:
            raise ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
        return old_password


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's view (it keeps this session; every other session of the user ends, as the password
    hash they were signed with no longer matches), with the throttled form."""

    form_class = ThrottledPasswordChangeForm

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}


# --- Password reset ---


def site_address() -> tuple[str, str]:
    """(scheme, host[:port]) of SITE_URL: links in mail point there, never at a request's Host header."""
    parts = urlsplit(settings.SITE_URL)
    return parts.scheme or "https", parts.netloc


def _same_email(a: str, b: str) -> bool:
    return unicodedata.normalize("NFKC", a).casefold() == unicodedata.normalize("NFKC", b).casefold()


class SiteResetForm(PasswordResetForm):
    """Django's form, except that accounts without a usable password may ask for a link too.

    Django leaves those out for sites where some accounts log in elsewhere (LDAP, SSO); here every
    account logs in with a password, and one without a usable password is one whose reset an admin
    forced: its owner must be able to ask for a fresh link when the first one expires.
    """

    def get_users(self, email: str) -> Iterator[User]:
        user_model = get_user_model()
        email_field = user_model.get_email_field_name()
        candidates = user_model._default_manager.filter(**{f"{email_field}__iexact": email, "is_active": True})
        return (user for user in candidates if _same_email(email, getattr(user, email_field) or ""))


class PasswordResetView(auth_views.PasswordResetView):
    form_class = SiteResetForm
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"

    def form_valid(self, form: SiteResetForm) -> HttpResponse:
        # The page never says whether the address has an account (that would tell anyone who has
        # one); a mail server that fails is logged by Django and not shown either.
        scheme, host = site_address()
        form.save(
            domain_override=host,
            use_https=scheme == "https",
            token_generator=self.token_generator,
            from_email=self.from_email,
            email_template_name=self.email_template_name,
            subject_template_name=self.subject_template_name,
            request=self.request,
            extra_email_context={"site_name": SITE_NAME, "valid_hours": str(settings.PASSWORD_RESET_TIMEOUT // 3600)},
        )
        return HttpResponseRedirect(self.get_success_url())


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        # Whoever set the new password proved they own the account's mailbox: a lock on the username
        # (someone else guessing at it) no longer protects anything. A lock on an address stays.
        from axes.utils import reset

        reset(username=form.user.get_username())
        return response


# --- Forced reset (by an admin) ---


def reset_link(user: User) -> str:
    """The password-reset link for `user` (valid PASSWORD_RESET_TIMEOUT, and until the password changes)."""
    scheme, host = site_address()
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    return f"{scheme}://{host}{path}"


@dataclass(frozen=True)
class ForcedReset:
    user: User
    link: str
    mailed_to: str  # empty: not mailed
    problem: str  # why not mailed


def force_password_reset(user: User) -> ForcedReset:
    """Make the password unusable (every session of the user ends) and mail the user a reset link.

    When there is no address or the mail can't be sent, the link is returned for the admin to
    hand over some other way.
    """
    user.set_unusable_password()
    user.save(update_fields=["password"])
    link = reset_link(user)  # after the save: the token is made from the new (unusable) password
    email = getattr(user, user.get_email_field_name(), "") or ""
    if not email:
        return ForcedReset(user, link, mailed_to="", problem="the account has no e-mail address")
    context = {
        "user": user,
        "reset_url": link,
        "site_name": SITE_NAME,
        "valid_hours": settings.PASSWORD_RESET_TIMEOUT // 3600,
    }
    subject = "".join(render_to_string("registration/forced_password_reset_subject.txt", context).splitlines())
    body = render_to_string("registration/forced_password_reset_email.txt", context)
    try:
        send_mail(subject, body, None, [email])
    except Exception as exc:  # any mail failure: the admin gets the link instead of an error page
        logger.exception("Could not mail the forced password reset of %s", user.get_username())
        return ForcedReset(
            user, link, mailed_to="", problem=f"sending the mail failed ({exc.__class__.__name__}: {exc})"
        )
    return ForcedReset(user, link, mailed_to=email, problem="")
