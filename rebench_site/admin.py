"""The Django admin's user pages, plus "Force password reset" (an action and a button on each user), and profiles."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from rebench_site.accounts import ForcedReset, force_password_reset
from rebench_site.models import Profile

admin.site.unregister(User)


@admin.register(User)
class SiteUserAdmin(UserAdmin[User]):
    change_form_template = "admin/auth/user/site_change_form.html"
    actions = ["force_password_reset_action"]

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<path:object_id>/force-password-reset/",
                self.admin_site.admin_view(self.force_password_reset_view),
                name="auth_user_force_password_reset",
            )
        ]
        return own + super().get_urls()

    @admin.action(description="Force a password reset (mails each a link)", permissions=["change"])
    def force_password_reset_action(self, request: HttpRequest, queryset: QuerySet[User]) -> HttpResponse | None:
        users = list(queryset.order_by("username"))
        if request.POST.get("confirmed") != "yes":
            return self._confirm_page(request, users, from_action=True)
        return self._reset(request, users)

    def force_password_reset_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        user = self.get_object(request, unquote(object_id))
        if user is None:
            raise Http404("No such user.")
        if not self.has_change_permission(request, user):
            raise PermissionDenied
        if request.method == "POST" and request.POST.get("confirmed") == "yes":
            return self._reset(request, [user])
        return self._confirm_page(request, [user], from_action=False)

    def _confirm_page(self, request: HttpRequest, users: list[User], *, from_action: bool) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Force a password reset?",
            "opts": self.opts,
            "users": users,
            "from_action": from_action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/auth/user/force_password_reset.html", context)

    def _reset(self, request: HttpRequest, users: list[User]) -> HttpResponse:
        results: list[ForcedReset] = []
        skipped = []
        for user in users:
            if user.pk == request.user.pk:
                # It would end this very session; an admin changes their own password on the
                # Change password page instead.
                skipped.append(user)
                continue
            results.append(force_password_reset(user))
        if skipped:
            messages.warning(request, "Your own account was left as it is: change your password on Change password.")
        for result in results:
            self.log_change(request, result.user, "Forced a password reset.")
        context = {
            **self.admin_site.each_context(request),
            "title": "Password resets forced",
            "opts": self.opts,
            "results": results,
        }
        return TemplateResponse(request, "admin/auth/user/force_password_reset_done.html", context)


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin[Profile]):
    """Users' own settings (their time zone), which they change on their Time zone page."""

    list_display = ["user", "time_zone"]
    list_filter = ["time_zone"]
    list_select_related = ["user"]
    search_fields = ["user__username", "time_zone"]
    raw_id_fields = ["user"]
