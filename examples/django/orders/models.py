# orders/models.py
from django.db import models


class Order(models.Model):
    email = models.EmailField()
    receipt_task = models.CharField(max_length=64, blank=True)  # the task's result id
