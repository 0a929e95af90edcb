"""The governed retrieval service (FastAPI). ``aquifer serve`` runs it with uvicorn."""

from aquifer.service.app import create_app
from aquifer.service.retrieval import Retriever

__all__ = ["Retriever", "create_app"]
