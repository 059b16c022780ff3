"""Environment pages: what each RE-Bench environment asks and needs."""

from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render

from environments import instructions, packages
from environments.models import Environment, EnvironmentConfiguration
from environments.services import environment_configuration_for
from rebench_site.errors import ServiceError
from rebench_site.roles import ADMIN, EXPERT, AuthenticatedHttpRequest, role_required


@role_required(EXPERT, ADMIN)
def environment_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(request, "environments/list.html", {"environments": Environment.objects.filter(is_active=True)})


@role_required(EXPERT, ADMIN)
def environment_detail(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    environment = get_object_or_404(Environment, slug=slug, is_active=True)
    text = instructions.markdown_for(environment)
    # The description is the page's summary already; instructions are shown when there are more.
    html = instructions.render(text) if text and text != environment.description else ""
    configuration = _configuration_or_none(environment)
    # Beside a smaller configuration, RE-Bench's own task's numbers, named as such.
    rebench = _configuration_or_none(environment, "full") if configuration and configuration.name != "full" else None
    package = packages.find_on_disk(environment.slug)
    fidelity = package.fidelity if package is not None else ()
    return render(
        request,
        "environments/detail.html",
        {
            "environment": environment,
            "instructions_html": html,
            "configuration": configuration,
            "rebench": rebench,
            "fidelity": fidelity,
            "fidelity_counts": {m: sum(1 for row in fidelity if row.matches == m) for m in packages.FIDELITY_MATCHES},
        },
    )


def _configuration_or_none(environment: Environment, name: str | None = None) -> EnvironmentConfiguration | None:
    """The configuration, or None where the package declares no such one: the page still shows the task,
    and starting an attempt names the problem where an admin acts on it."""
    try:
        return environment_configuration_for(environment=environment, name=name)
    except ServiceError:
        return None


@role_required(ADMIN)
def task_family_register(request: AuthenticatedHttpRequest) -> HttpResponse:
    """An admin registers a METR Task Standard family by its directory on the workstations."""
    from django.contrib import messages
    from django.shortcuts import redirect

    from environments import task_standard
    from environments.models import TaskFamily
    from rebench_site.errors import ServiceError

    error = ""
    path = request.POST.get("path", "").strip() if request.method == "POST" else ""
    if request.method == "POST":
        if not path:
            error = "Give the family's directory."
        else:
            try:
                family = task_standard.task_family_register(path=path)
            except ServiceError as exc:
                error = exc.message
            else:
                tasks = ", ".join(t.task_name for t in family.tasks.all())
                messages.success(
                    request,
                    f"Registered {family.name}: {tasks}. TaskFamily.install for version "
                    f"{family.installed_version[:8]}: {family.install_output or 'run before'}.",
                )
                return redirect("environments:task-family-register")
    families = TaskFamily.objects.prefetch_related("tasks__environment")
    return render(
        request,
        "environments/task_family_register.html",
        {"families": families, "error": error, "path": path},
        status=400 if error else 200,
    )
