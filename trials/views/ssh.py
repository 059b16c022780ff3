"""Experts' SSH access: their keys (list, add, remove) and a short-lived key for one running attempt."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from rebench_site.errors import ServiceError
from rebench_site.roles import EXPERT, AuthenticatedHttpRequest, role_required
from trials import selectors, services
from trials.forms import SSHKeyForm
from trials.models import SSHKey
from trials.views._shared import _form_error, _visible_attempt


@role_required(EXPERT)
def ssh_keys(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The expert's public keys, and a form to add one."""
    form = SSHKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.ssh_key_add(
                user=request.user, public_key=form.cleaned_data["public_key"], name=form.cleaned_data["name"]
            )
        except ServiceError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, "Key added: it opens your running attempts over SSH.")
            return redirect("trials:ssh-keys")
    status = 400 if request.method == "POST" else 200
    keys = SSHKey.objects.filter(user=request.user, attempt__isnull=True)
    return render(request, "trials/ssh_keys.html", {"form": form, "keys": keys}, status=status)


@require_POST
@role_required(EXPERT)
def ssh_key_delete(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(SSHKey, pk=pk, user=request.user)
    services.ssh_key_delete(key=key, by=request.user)
    messages.success(request, f"Key {key.name!r} removed.")
    return redirect("trials:ssh-keys")


@require_POST
@role_required(EXPERT)
def attempt_ssh_key(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """A new key pair for this attempt only; its private half is on this page once and stored nowhere."""
    attempt = _visible_attempt(request, pk)
    try:
        key, private = services.ssh_key_create_for_attempt(attempt=attempt, by=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("trials:attempt", pk=pk)
    context = {"attempt": attempt, "key": key, "private_key": private, "ssh": selectors.attempt_ssh_command(attempt)}
    response = render(request, "trials/ssh_key_created.html", context)
    response["Cache-Control"] = "no-store"
    return response
