"""rebench_site: human expert trials, grading and review for RE-Bench.

The Celery application (rebench_site.celery) is loaded when Django is set up (apps.py), not on
import of this package: a process that reads the settings alone (an SSH workstation's gate) stays
light.
"""
