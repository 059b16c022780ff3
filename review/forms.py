"""Forms for the review admin pages: queue creation and completion uploads."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model

from rebench_site.roles import REVIEWER
from review.models import DEFAULT_MIN_SECONDS_PER_ITEM, Completion, ImportJob, ReviewQueue


class QueueForm(forms.Form):
    name = forms.CharField(max_length=200)
    policy = forms.ChoiceField(choices=[c for c in ReviewQueue.Policy.choices if c[0] != ReviewQueue.Policy.ADJUDICATE])
    source = forms.ChoiceField(choices=[("", "any source"), *Completion.Source.choices], required=False)
    batch = forms.CharField(max_length=200, required=False, help_text="empty: any batch")
    size = forms.IntegerField(min_value=1, required=False, help_text="sample this many (empty: all that match)")
    overlap = forms.IntegerField(min_value=1, max_value=10, initial=2, help_text="labels wanted per item")
    lease_seconds = forms.IntegerField(min_value=30, max_value=86400, initial=300)
    gold_rate = forms.FloatField(min_value=0, max_value=0.99, initial=0.0, help_text="fraction of gold items mixed in")
    min_seconds_per_item = forms.FloatField(
        min_value=0,
        max_value=3600,
        initial=DEFAULT_MIN_SECONDS_PER_ITEM,
        required=False,
        label="Minimum seconds per item",
        help_text=f"labels given faster are flagged as too fast (0: never; empty: {DEFAULT_MIN_SECONDS_PER_ITEM:g})",
    )
    all_reviewers = forms.BooleanField(required=False, initial=True, label="Open to all reviewers")
    reviewers = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.none(), required=False, help_text="when not open to all"
    )
    guideline = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        reviewers = self.fields["reviewers"]
        assert isinstance(reviewers, forms.ModelMultipleChoiceField)
        reviewers.queryset = get_user_model().objects.filter(groups__name=REVIEWER).order_by("username")


class ImportForm(forms.Form):
    file = forms.FileField(
        help_text="JSONL (one object a line) or CSV with a header: prompt,text[,source,batch,external_id,gold_label]"
    )
    format = forms.ChoiceField(choices=[("", "from the file name"), *ImportJob.Format.choices], required=False)
    batch = forms.CharField(max_length=200, required=False, help_text="for rows that name none")

    def clean_file(self) -> object:
        upload = self.cleaned_data["file"]
        if upload.size > settings.REVIEW_IMPORT_MAX_BYTES:
            raise forms.ValidationError(f"The file is larger than {settings.REVIEW_IMPORT_MAX_BYTES:,} bytes.")
        return upload
