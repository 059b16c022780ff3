"""Environment pages: what each RE-Bench environment asks and needs."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from environments.models import Environment
from rebench_site.roles import ADMIN, EXPERT, role_required


@role_required(EXPERT, ADMIN)
def environment_list(request: HttpRequest) -> HttpResponse:
    return render(request, "environments/list.html", {"environments": Environment.objects.filter(is_active=True)})


@role_required(EXPERT, ADMIN)
def environment_detail(request: HttpRequest, slug: str) -> HttpResponse:
    environment = get_object_or_404(Environment, slug=slug, is_active=True)
    return render(request, "environments/detail.html", {"environment": environment})
