"""Parts of the Intervene page's views too long for ui/views/intervene.py; only that module imports them."""
