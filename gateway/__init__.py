"""The HTTP gateway: REST, SSE/NDJSON, WebSocket and the OpenAI API over the coordinator's gRPC services.

`create_app(target)` builds the ASGI app; `serve_gateway(target, listen)` runs it.
"""

from gateway.app import create_app
from gateway.main import add_gateway_arguments, serve_gateway

__all__ = ["add_gateway_arguments", "create_app", "serve_gateway"]
