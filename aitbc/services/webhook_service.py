"""WebhookService: webhooks translated onto the coordinator's `Webhooks` part."""

from __future__ import annotations

from aitbc.coordinator.engine import Coordinator
from aitbc.domain.webhooks import DeliveryRecord, WebhookRecord
from aitbc.services.convert import timestamp
from aitbc.services.interceptors import Context, current_principal
from aitbc.v1 import webhooks_pb2, webhooks_pb2_grpc


def webhook_to_proto(webhook: WebhookRecord) -> webhooks_pb2.Webhook:
    return webhooks_pb2.Webhook(
        webhook_id=webhook.webhook_id,
        url=webhook.url,
        events=list(webhook.events),
        created_at=timestamp(webhook.created_at),
    )


def delivery_to_proto(delivery: DeliveryRecord) -> webhooks_pb2.WebhookDelivery:
    return webhooks_pb2.WebhookDelivery(
        delivery_id=delivery.delivery_id,
        event=delivery.event,
        job_id=delivery.job_id,
        status=delivery.status.value,
        attempts=delivery.attempts,
        last_status_code=delivery.last_status_code,
        last_latency_ms=delivery.last_latency_ms,
        last_error=delivery.last_error,
        created_at=timestamp(delivery.created_at),
        next_attempt_at=timestamp(delivery.next_attempt_at),
        delivered_at=timestamp(delivery.delivered_at),
    )


class WebhookService(webhooks_pb2_grpc.WebhookServiceServicer):
    def __init__(self, coordinator: Coordinator) -> None:
        self._webhooks = coordinator.webhooks

    async def CreateWebhook(
        self, request: webhooks_pb2.CreateWebhookRequest, context: Context
    ) -> webhooks_pb2.CreateWebhookResponse:
        webhook = await self._webhooks.create(current_principal(), request.url, list(request.events))
        return webhooks_pb2.CreateWebhookResponse(webhook=webhook_to_proto(webhook), secret=webhook.secret)

    async def ListWebhooks(
        self, request: webhooks_pb2.ListWebhooksRequest, context: Context
    ) -> webhooks_pb2.ListWebhooksResponse:
        webhooks = await self._webhooks.all(current_principal())
        return webhooks_pb2.ListWebhooksResponse(webhooks=[webhook_to_proto(webhook) for webhook in webhooks])

    async def GetWebhook(
        self, request: webhooks_pb2.GetWebhookRequest, context: Context
    ) -> webhooks_pb2.GetWebhookResponse:
        webhook, deliveries = await self._webhooks.get(current_principal(), request.webhook_id)
        return webhooks_pb2.GetWebhookResponse(
            webhook=webhook_to_proto(webhook), recent_deliveries=[delivery_to_proto(d) for d in deliveries]
        )

    async def DeleteWebhook(
        self, request: webhooks_pb2.DeleteWebhookRequest, context: Context
    ) -> webhooks_pb2.DeleteWebhookResponse:
        await self._webhooks.delete(current_principal(), request.webhook_id)
        return webhooks_pb2.DeleteWebhookResponse()

    async def TestWebhook(
        self, request: webhooks_pb2.TestWebhookRequest, context: Context
    ) -> webhooks_pb2.TestWebhookResponse:
        delivery = await self._webhooks.test(current_principal(), request.webhook_id)
        return webhooks_pb2.TestWebhookResponse(delivery=delivery_to_proto(delivery))
