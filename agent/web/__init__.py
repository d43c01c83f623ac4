"""The local web chat (`synthloop ui`): a FastAPI server, run management and static front-end files."""
