"""mitelacd: live call-centre floor state from a Mitel ICP's ACD real time events."""

#: The one place the version is written; setup.cfg reads it from here.
__version__ = "0.2.0"
