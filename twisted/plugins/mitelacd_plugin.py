from twisted.application.service import ServiceMaker

mitelacd = ServiceMaker(
    "mitelacd",
    "mitelacd.tap",
    "Read the Mitel ACD real time feed and publish the floor's live state.",
    "mitelacd",
)
