"""Schemathesis hooks for Frontpage (loaded by .ci/schemathesis).

The bulk import takes NDJSON: the OpenAPI document describes its lines as an
array of ArticleInput, and this writes such an array one JSON object per
line. Anything that is not an array (negative tests) is sent as one line.
"""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    lines = value if isinstance(value, list) else [value]
    return "".join(json.dumps(line) + "\n" for line in lines).encode("utf-8")
