"""Reviewer pages (queues and labeling arrive with the review issue)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from rebench_site.roles import ADMIN, REVIEWER, role_required


@role_required(REVIEWER, ADMIN)
def review_home(request: HttpRequest) -> HttpResponse:
    return render(request, "review/home.html")
