"""URL routes: pages, the REST API under /api/, the OpenAPI schema and the Django admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from rebench_site import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("environments/", include("environments.urls")),
    path("", include("trials.urls")),
    # The classifier pages first: the review app's patterns may capture any slug under review/.
    path("review/", include("review.classifier.urls")),
    path("review/", include("review.urls")),
    path("grading/imports/", include("graders.imports.urls")),
    path("grading/", include("graders.urls")),
    path("leaderboards/", include("graders.leaderboards.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/", include("rebench_site.api_urls")),
]
