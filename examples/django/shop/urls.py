# shop/urls.py
from django.contrib import admin
from django.urls import include, path

from orders import views

urlpatterns = [
    # The dashboard, for staff (Django's admin login); before admin/ so that it wins.
    path("admin/resque/", include("resque.contrib.django.urls")),
    path("admin/", admin.site.urls),
    path("orders/", views.place_order, name="place-order"),
    path("orders/<int:order_id>/", views.order, name="order"),
]
