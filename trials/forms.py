"""Forms for booking and the attempt page; they parse input, services decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from environments.models import Environment
from trials.models import Pause, Workstation

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self) -> None:
        super().__init__(format=DATETIME_LOCAL)


class BookingForm(forms.Form):
    workstation = forms.ModelChoiceField(queryset=Workstation.objects.all())
    starts_at = forms.DateTimeField(
        widget=DateTimeLocalInput(), input_formats=[DATETIME_LOCAL, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
    )


class AdminBookingForm(BookingForm):
    expert = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(groups__name="expert").order_by("username")
    )
    environment = forms.ModelChoiceField(queryset=Environment.objects.filter(is_active=True), to_field_name="slug")
    gpu_count = forms.IntegerField(
        label="GPUs",
        required=False,
        min_value=0,
        max_value=64,
        help_text="Empty: the environment's minimum. More, up to its maximum, for an attempt that needs them.",
    )

    field_order = ["expert", "environment", "workstation", "starts_at", "gpu_count"]


class ReservationEndForm(forms.Form):
    ends_at = forms.DateTimeField(widget=DateTimeLocalInput(), input_formats=[DATETIME_LOCAL, "%Y-%m-%dT%H:%M:%S"])
    note = forms.CharField(required=False, max_length=500)


class NoteForm(forms.Form):
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "What are you trying now?"}), max_length=10_000
    )


class TechnicalPauseForm(forms.Form):
    started_at = forms.DateTimeField(widget=DateTimeLocalInput(), input_formats=[DATETIME_LOCAL])
    ended_at = forms.DateTimeField(widget=DateTimeLocalInput(), input_formats=[DATETIME_LOCAL])
    reason = forms.ChoiceField(choices=[(Pause.Reason.TECHNICAL, "technical"), (Pause.Reason.ADMIN, "admin")])
    note = forms.CharField(required=False, max_length=500)


class WorkstationForm(forms.ModelForm[Workstation]):
    class Meta:
        model = Workstation
        fields = ["name", "host", "gpu_count", "gpu_model", "queue_name", "backend", "ssh_port", "ssh_user"]
        help_texts = {"queue_name": "Leave empty for ws.<name>."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["queue_name"].required = False


class SSHKeyForm(forms.Form):
    name = forms.CharField(required=False, max_length=100, help_text="Where the key lives (laptop, desktop).")
    public_key = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "ssh-ed25519 AAAA… you@laptop"}),
        max_length=16 * 1024,
        help_text="The one line of your public key file (~/.ssh/id_ed25519.pub).",
        error_messages={"required": "Paste a public key (the one line of your id_ed25519.pub, for instance)."},
    )
