from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("form/", views.form_view),
    path("file/", views.file_view),
    path("hello/", views.hello),
]
