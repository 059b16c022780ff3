"""The admin's workstation pages: the list (and registering one), and one workstation's status and bookings."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from rebench_site.errors import ServiceError
from rebench_site.roles import ADMIN, AuthenticatedHttpRequest, role_required
from trials import services
from trials.forms import WorkstationForm
from trials.models import Gpu, Workstation
from trials.onboarding import workstation_setup_script
from trials.views._shared import _form_error
from workstation.setup import SetupError


@role_required(ADMIN)
def workstation_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = WorkstationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            ws = services.workstation_register(**form.cleaned_data)
        except ServiceError as exc:
            _form_error(form, exc)
        else:
            messages.success(
                request,
                f"Registered {ws.name}; run its set-up script as root on {ws.host}. "
                "It shows offline until its worker's first heartbeat.",
            )
            return redirect("trials:workstation", pk=ws.pk)
    now = timezone.now()
    workstations = [(ws, ws.effective_status(now)) for ws in Workstation.objects.all()]
    return render(
        request,
        "trials/workstation_list.html",
        {"workstations": workstations, "form": form},
        status=400 if request.method == "POST" else 200,
    )


@role_required(ADMIN)
def workstation_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    workstation = get_object_or_404(Workstation, pk=pk)
    if request.method == "POST":
        try:
            services.workstation_set_status(workstation=workstation, status=request.POST.get("status", ""))
            messages.success(request, f"{workstation.name} is now {workstation.status}.")
        except ServiceError as exc:
            messages.error(request, exc.message)
        return redirect("trials:workstation", pk=pk)
    now = timezone.now()
    upcoming = (
        workstation.reservations.filter(cancelled_at__isnull=True, ends_at__gte=now)
        .select_related("expert", "environment")
        .order_by("starts_at")
    )
    holding_now = [reservation for reservation in upcoming if reservation.starts_at <= now]
    known = {gpu.index: gpu for gpu in Gpu.objects.filter(workstation=workstation)}
    gpus = [
        (index, known.get(index), next((r for r in holding_now if r.holds_gpu(index)), None))
        for index in range(workstation.gpu_count)
    ]
    return render(
        request,
        "trials/workstation_detail.html",
        {
            "workstation": workstation,
            "status": workstation.effective_status(now),
            "upcoming": upcoming,
            "gpus": gpus,
            "statuses": Workstation.Status.choices,
        },
    )


@require_POST
@role_required(ADMIN)
def gpu_problem(request: AuthenticatedHttpRequest, pk: int, index: int) -> HttpResponse:
    """An admin takes one GPU out of service with a reason, or clears the reason (an empty `problem`)."""
    gpu = get_object_or_404(Gpu, workstation_id=pk, index=index)
    try:
        gpu = services.gpu_set_problem(gpu=gpu, problem=request.POST.get("problem", ""), by=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        if gpu.problem_set_by_admin:
            messages.success(request, f"GPU {index} is out of service: {gpu.problem}.")
        elif gpu.problem:
            messages.warning(request, f"Your reason is cleared; GPU {index} stays out: {gpu.problem}.")
        else:
            messages.success(request, f"GPU {index} can be booked again.")
    return redirect("trials:workstation", pk=pk)


@require_POST
@role_required(ADMIN)
def workstation_agent_token(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Issue the workstation's agent a new token (shown this once; the old one stops) or revoke it."""
    workstation = get_object_or_404(Workstation, pk=pk)
    action = request.POST.get("action", "")
    if action == "revoke":
        services.workstation_agent_token_revoke(workstation=workstation, by=request.user)
        messages.success(request, f"{workstation.name}'s agent token is revoked: its agent's calls are refused now.")
        return redirect("trials:workstation", pk=pk)
    if action != "issue":
        messages.error(request, "Say issue or revoke.")
        return redirect("trials:workstation", pk=pk)
    token = services.workstation_agent_token_issue(workstation=workstation, by=request.user)
    response = render(request, "trials/workstation_token.html", {"workstation": workstation, "token": token})
    response["Cache-Control"] = "no-store"  # the token is shown this once: no cache keeps it
    return response


@role_required(ADMIN)
def workstation_setup(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The set-up script (what `manage.py workstation_add --print-setup` prints), to run as root on the host."""
    workstation = get_object_or_404(Workstation, pk=pk)
    try:
        script = workstation_setup_script(workstation=workstation)
    except SetupError as exc:
        messages.error(request, f"No set-up script for {workstation.name}: {exc}")
        return redirect("trials:workstation", pk=pk)
    response = HttpResponse(script, content_type="text/x-shellscript; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="rebench-setup-{workstation.name}.sh"'
    # It carries the worker's broker login: no cache keeps a copy.
    response["Cache-Control"] = "no-store"
    return response
