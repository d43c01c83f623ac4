"""The compiled graph for `langgraph dev` / LangGraph Studio / Platform (see `langgraph.json` at the repo root).

No checkpointer here: the server brings its own. Without a runtime context the nodes build default `Deps`
(`synthloop.agent.default_deps`): output under ./runs/langgraph-<thread id> (or $SYNTHLOOP_LANGGRAPH_OUT),
config from $SYNTHLOOP_CONFIG. Start a run with the input {"request": "200 kitchen scenes with cups …"};
answer the approval interrupt with {"action": "approve"} / {"action": "answer", "text": …} /
{"action": "message", "text": "make it 300"} / {"action": "cancel"}.
"""

from __future__ import annotations

from synthloop.agent.graph import build_graph

graph = build_graph()
# LangGraph's server turns a missing context into `{}` and would build `Deps(**{})` from the context schema;
# without a schema the nodes get what was passed and fall back to default Deps.
graph.context_schema = None
