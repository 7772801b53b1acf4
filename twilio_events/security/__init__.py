"""Is a request from Twilio? Signatures (auth tokens, shared keys), HTTP logins, refusals explained.

`urls` rebuilds the URL Twilio signed, `signature` computes Twilio's HMAC fast, `credentials` reads what
the user configured, `http_auth` checks Basic or Digest logins, `verifier` accepts or refuses a request,
and `diagnosis` explains a refusal.
"""

from .credentials import Credentials, SharedKey, load_credentials
from .diagnosis import RefusalLog, explain
from .http_auth import BasicAuth, DigestAuth
from .refusal import Refusal
from .signature import SignatureValidator
from .urls import callback_url
from .verifier import SIGNATURE_HEADER, Match, RequestVerifier

__all__ = [
    "SIGNATURE_HEADER",
    "BasicAuth",
    "Credentials",
    "DigestAuth",
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
