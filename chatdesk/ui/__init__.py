"""The Qt front: main window, session sidebar, chat view, composer and settings dialog.

This is the only package that imports Qt; it talks to the core through the
SessionManager, the ChatEngine and the ProviderRegistry it is handed.
"""
