"""Site-wide pages: the role-aware home, the audit log."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from audit import selectors as audit_selectors
from rebench_site import roles
from rebench_site.roles import AuthenticatedHttpRequest


@login_required
def home(request: AuthenticatedHttpRequest) -> HttpResponse:
    user_roles = roles.user_roles(request.user)
    if roles.ADMIN in user_roles:
        return redirect("trials:schedule")
    if roles.EXPERT in user_roles:
        return redirect("trials:my")
    if roles.REVIEWER in user_roles:
        return redirect("review:home")
    return render(request, "no_role.html", status=403)


@require_GET
@roles.role_required(roles.ADMIN)
def audit_log(request: HttpRequest) -> HttpResponse:
    """Every admin action that changed a number or a clock, newest first; filter by `?action=`."""
    actions = audit_selectors.audit_actions()
    action = request.GET.get("action", "")
    if action not in actions:
        action = ""
    events = list(audit_selectors.audit_events(action=action)[:500])
    return render(request, "audit_log.html", {"events": events, "actions": actions, "action": action})
