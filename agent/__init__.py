"""synthloop agent: the LangGraph state machine, its CLI and chat front-ends."""
