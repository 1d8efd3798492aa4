"""Views of the test project: a CSRF-protected form and a FileResponse."""

from django.http import FileResponse, HttpResponse
from django.middleware.csrf import get_token
from django.utils.html import escape

from django.conf import settings


def hello(request):
    return HttpResponse("django hello, script prefix %s" % request.META.get("SCRIPT_NAME", ""))


def form_view(request):
    if request.method == "POST":
        return HttpResponse("posted: %s" % escape(request.POST.get("message", "")))
    token = get_token(request)
    return HttpResponse(
        '<form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="%s">'
        '<input name="message"></form>' % token
    )


def file_view(request):
    return FileResponse(open(settings.BASE_DIR / "manage.py", "rb"), content_type="text/x-python")
