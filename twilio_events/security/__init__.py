"""Is a request from Twilio? Signatures (auth tokens, shared keys), Basic credentials, refusals explained.

`urls` rebuilds the URL Twilio signed, `signature` computes Twilio's HMAC fast, `credentials` reads what
the user configured, `verifier` accepts or refuses a request, and `diagnosis` explains a refusal.
"""

from .credentials import Credentials, SharedKey, load_credentials
from .diagnosis import RefusalLog, explain
from .signature import SignatureValidator
from .urls import callback_url
from .verifier import SIGNATURE_HEADER, Match, Refusal, RequestVerifier

__all__ = [
    "SIGNATURE_HEADER",
    "Credentials",
    "Match",
    "Refusal",
    "RefusalLog",
    "RequestVerifier",
    "SharedKey",
    "SignatureValidator",
    "callback_url",
    "explain",
    "load_credentials",
]
