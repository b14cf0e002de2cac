"""The Streamlit layer: the only shared code that imports streamlit (pages stay thin and call into it)."""
