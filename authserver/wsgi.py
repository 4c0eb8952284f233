"""WSGI entry point for production serving: ``gunicorn authserver.wsgi:app``.

Unlike the ``authserver`` command, this refuses to start without
``AUTHSERVER_SECRET_KEY``.
"""

from authserver import create_app

app = create_app()
