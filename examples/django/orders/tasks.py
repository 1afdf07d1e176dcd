# orders/tasks.py
from django.conf import settings

try:
    from django.tasks import task  # Django 6
except ImportError:
    from django_tasks import task  # Django 5.2, with the django-tasks package

from orders.models import Order


@task()
def send_receipt(order_id):
    # Runs in the worker. The order is there: the task was pushed when the view's
    # transaction committed.
    order = Order.objects.get(pk=order_id)
    line = f"receipt for order {order.pk} sent to {order.email}"
    with open(settings.RECEIPTS_LOG, "a") as log:
        log.write(line + "\n")
    return line
