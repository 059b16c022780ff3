from django.urls import path

from graders import views

app_name = "graders"
urlpatterns = [
    path("attempts/<int:pk>/score/", views.attempt_score, name="attempt-score"),
    path("attempts/<int:pk>/scores/", views.attempt_score_card, name="attempt-scores"),
    path("jobs/", views.job_list, name="jobs"),
    path("jobs/rerun/", views.job_rerun, name="job-rerun"),
    path("jobs/close/", views.job_close, name="job-close"),
    path("manual/", views.manual_scores, name="manual-scores"),
]
