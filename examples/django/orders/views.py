# orders/views.py
from django.db import transaction
from django.http import JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_http_methods

from orders.models import Order
from orders.tasks import send_receipt


@require_http_methods(["GET", "POST"])
def place_order(request):
    if request.method == "GET":  # the form's CSRF token, for a client that posts one
        return JsonResponse({"csrf_token": get_token(request)})
    with transaction.atomic():
        order = Order.objects.create(email=request.POST["email"])
        result = send_receipt.enqueue(order.pk)  # pushed when the transaction commits
        order.receipt_task = result.id
        order.save()
    return JsonResponse({"order": order.pk, "task": result.id}, status=202)


def order(request, order_id):
    order = get_object_or_404(Order, pk=order_id)
    result = send_receipt.get_result(order.receipt_task)
    sent = result.return_value if result.status == "SUCCESSFUL" else None
    return JsonResponse({"order": order.pk, "receipt": result.status, "sent": sent})
