"""``turnscope repro``: a recorded run rebuilt as an offline pytest file.

``script.py`` reads what the store holds about a run into a plain ``Script``; ``render.py``
writes the pytest file from it, with ``template.py``'s replay machinery at its end;
``command.py`` is the CLI command.
"""
