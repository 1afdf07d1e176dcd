# jobs.py
import resque


@resque.job(queue="reports", status=True)
def monthly_report(month, *, currency="EUR"):
    # Runs in the worker (resque work --app jobs); its return value is kept as the result.
    return {"month": month, "currency": currency, "orders": len(month) * 7}
