from django.urls import path

from environments import views

app_name = "environments"
urlpatterns = [
    path("", views.environment_list, name="list"),
    path("<slug:slug>/", views.environment_detail, name="detail"),
]
