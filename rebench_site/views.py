"""Site-wide pages: the role-aware home."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from rebench_site import roles


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user_roles = roles.user_roles(request.user)
    if roles.ADMIN in user_roles:
        return redirect("trials:schedule")
    if roles.EXPERT in user_roles:
        return redirect("trials:my")
    if roles.REVIEWER in user_roles:
        return redirect("review:home")
    return render(request, "no_role.html", status=403)
