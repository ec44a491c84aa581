// The /docs page (and /api/docs): Swagger UI, vendored under /static/vendor/, over the OpenAPI document next to it.
/* global SwaggerUIBundle */
SwaggerUIBundle({ url: "openapi.json", dom_id: "#swagger-ui" });
