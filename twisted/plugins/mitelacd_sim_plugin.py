from twisted.application.service import ServiceMaker

mitelacd_sim = ServiceMaker(
    "mitelacd-sim",
    "mitelacd.sim.service",
    "A simulated Mitel ICP that sends ACD real time events (for trying mitelacd).",
    "mitelacd-sim",
)
