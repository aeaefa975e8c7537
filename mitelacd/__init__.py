"""mitelacd: live call-centre floor state from a Mitel ICP's ACD real time events."""
