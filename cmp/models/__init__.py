"""The data model, one module per aggregate."""

from cmp.models.consent import ChainCheckpoint, ChainHead, ConsentEvent, ConsentState
from cmp.models.email import EmailActivity, UnsubscribeLink
from cmp.models.key import ApiKey, DashboardSession
from cmp.models.log import (
    DecisionRollup,
    LogCheckpoint,
    LogCosignature,
    LogTile,
    LogVerification,
    LogWitness,
    PurposeRollup,
)
from cmp.models.notice import ImmutableRecordError, NoticeVersion
from cmp.models.site import Cookie, JurisdictionAcknowledgement, Purpose, Site
from cmp.models.subject import Subject, SubjectIdentifier

__all__ = [
    "ApiKey",
    "ChainCheckpoint",
    "ChainHead",
    "ConsentEvent",
    "ConsentState",
    "Cookie",
    "DashboardSession",
    "DecisionRollup",
    "EmailActivity",
    "ImmutableRecordError",
    "JurisdictionAcknowledgement",
    "LogCheckpoint",
    "LogCosignature",
    "LogTile",
    "LogVerification",
    "LogWitness",
    "NoticeVersion",
    "Purpose",
    "PurposeRollup",
    "Site",
    "Subject",
    "SubjectIdentifier",
    "UnsubscribeLink",
]
