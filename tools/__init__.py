"""synthloop tools: one protocol per tool, one backend per file. Tools never import the agent."""
