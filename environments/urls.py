from django.urls import path

from environments import views

app_name = "environments"
urlpatterns = [
    path("", views.environment_list, name="list"),
    path("task-families/", views.task_family_register, name="task-family-register"),
    path("<slug:slug>/", views.environment_detail, name="detail"),
]
