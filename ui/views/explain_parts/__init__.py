"""Parts of the Explain page's views too long for ui/views/explain.py; only that module imports them."""
