"""Review pages: reviewers' queues, labeling and own labels; admins' queues, quality, completions and imports."""

from django.urls import path

from review import views

app_name = "review"
urlpatterns = [
    path("", views.review_home, name="home"),
    path("queues/<int:pk>/label/", views.queue_label, name="label"),
    path("queues/<int:pk>/_next/", views.item_next, name="item-next"),
    path("queues/<int:pk>/label/submit/", views.label_submit, name="label-submit"),
    path("queues/<int:pk>/label/skip/", views.label_skip, name="label-skip"),
    path("queues/<int:pk>/label/undo/", views.label_undo, name="label-undo"),
    path("queues/<int:pk>/lease/renew/", views.lease_renew, name="lease-renew"),
    path("queues/<int:pk>/lease/release/", views.lease_release, name="lease-release"),
    path("labels/", views.my_labels, name="my-labels"),
    path("labels/<int:pk>/edit/", views.label_edit, name="label-edit"),
    path("queues/", views.queue_list, name="queues"),
    path("queues/new/", views.queue_new, name="queue-new"),
    path("queues/<int:pk>/", views.queue_detail, name="queue"),
    path("queues/<int:pk>/export.jsonl", views.queue_export, name="queue-export"),
    path("queues/<int:pk>/close/", views.queue_close, name="queue-close"),
    path("reviewers/", views.reviewer_list, name="reviewers"),
    path("completions/", views.completion_list, name="completions"),
    path("import/", views.import_page, name="import"),
    path("import/<int:pk>/_progress/", views.import_job, name="import-job"),
]
