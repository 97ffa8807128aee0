"""Notifications: notifier objects for any ``on_*_callback`` (task, DAG, SLA miss), alone
or in lists. A notifier that fails or times out is logged (masked) and never changes a
task's or run's state.

May import: mlpipe.connections, mlpipe.masking, mlpipe.errors, mlpipe.core (standard
library clients only: urllib, smtplib).
"""

from __future__ import annotations

from mlpipe.notifications.base import BaseNotifier, message_fields
from mlpipe.notifications.email import EmailNotifier
from mlpipe.notifications.webhook import SlackNotifier, WebhookNotifier

__all__ = ["BaseNotifier", "EmailNotifier", "SlackNotifier", "WebhookNotifier",
           "message_fields"]
