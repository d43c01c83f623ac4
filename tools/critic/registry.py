"""Judges by id. The embedded rule judges are listed here (and built by `embedded_judges` from the run
config's flat fields); config `judges: [{backend: NAME, ...options}]` adds any registered judge, and other
packages add theirs under the `synthloop.judges` entry point group."""

from synthloop.tools.backend import Registry
from synthloop.tools.critic.base import Judge

_RULES = "synthloop.tools.critic.rules"
JUDGES: Registry[Judge] = Registry("judge", "synthloop.judges", {
    "rules.geometry": f"{_RULES}:GeometryJudge",
    "rules.mask_box": f"{_RULES}:MaskBoxJudge",
    "rules.occlusion": f"{_RULES}:OcclusionJudge",
    "rules.truncation": f"{_RULES}:TruncationJudge",
    "rules.tiny": f"{_RULES}:TinyObjectJudge",
    "rules.content": f"{_RULES}:ContentJudge",
    "rules.class_balance": f"{_RULES}:ClassBalanceJudge",
    "rules.image_quality": "synthloop.tools.critic.pixels:ImageQualityJudge",
    "rules.boundary": "synthloop.tools.critic.pixels:BoundaryEvidenceJudge",
    "rules.duplicate": "synthloop.tools.critic.duplicates:DuplicateJudge",
    "rules.certificate": "synthloop.tools.critic.certificate:CertificateJudge",
    "detector.recognisability": "synthloop.tools.critic.recognisability:RecognisabilityJudge",
})
