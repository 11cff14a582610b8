"""Label Studio's own settings for the integration tests, with short-lived access tokens.

The SDK exchanges a Personal Access Token for an access token and asks for a
new one when it expires; Label Studio's five minutes would keep a test waiting
that long to see it happen. ``LEEWAY`` lets a token that expires while its
request is on the way still be accepted, as five minutes make likely in
production. Everything else is Label Studio's default.
"""

import os
from datetime import timedelta

# Label Studio's settings read django.conf.settings while they load, that is this module
# half-loaded: the base settings must be here before the rest is imported.
from core.settings.base import *
from label_studio.core.settings.label_studio import *

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=int(os.environ["ANNOTATE_TEST_ACCESS_TOKEN_SECONDS"])),
    "LEEWAY": int(os.environ["ANNOTATE_TEST_TOKEN_LEEWAY_SECONDS"]),
}
