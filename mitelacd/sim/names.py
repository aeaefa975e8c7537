"""Made-up names for a simulated floor, so that its board reads like a real one.

``twistd mitelacd --simulate`` without ``--names`` shows these: a name for
every agent (a first and a last name, mostly from one part of the world,
now and then mixed), each agent in the group the floor plan puts it in, a
department name for every group (Sales, Support and Billing first), a name
for every path after a group it serves (``Sales line``, ``Sales priority
line``) and a text for each make-busy reason code the floor sends.

Pure: a :class:`~mitelacd.sim.floor.FloorPlan` and a random source in, a
:class:`~mitelacd.floor.names.Names` out, the same one for the same plan and
the same draws.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from mitelacd.floor.names import AgentEntry, Names
from mitelacd.sim.floor import FloorPlan

#: First and last names that go together, a pair of tuples per part of the world.
PEOPLE: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (  # England, North America, Australia
        ("Oliver", "Emily", "James", "Charlotte", "Harry", "Sophie", "Jack", "Grace"),
        ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies"),
    ),
    (
        ("Thomas", "Hannah", "Daniel", "Chloe", "Samuel", "Lucy", "Matthew", "Megan"),
        ("Robinson", "Wright", "Thompson", "Evans", "Walker", "Hughes", "Green", "Clarke"),
    ),
    (  # Ireland, Scotland, Wales
        ("Aoife", "Ciarán", "Niamh", "Seán", "Siobhán", "Eoin", "Róisín", "Declan"),
        ("Murphy", "O'Brien", "Kelly", "Walsh", "Byrne", "Ryan", "O'Connor", "Gallagher"),
    ),
    (
        ("Fiona", "Callum", "Isla", "Rhys", "Cerys", "Gareth", "Mairi", "Euan"),
        ("MacDonald", "Campbell", "Fraser", "Morgan", "Pritchard", "Llewellyn", "Doyle", "Reid"),
    ),
    (  # France, Belgium, Québec
        ("Camille", "Louis", "Chloé", "Hugo", "Manon", "Lucas", "Léa", "Mathieu", "Élodie"),
        ("Martin", "Bernard", "Dubois", "Moreau", "Laurent", "Lefebvre", "Girard", "Fournier"),
    ),
    (
        ("Antoine", "Juliette", "Théo", "Margaux", "Nicolas", "Amélie", "Julien", "Céline"),
        ("Rousseau", "Mercier", "Bonnet", "Lambert", "Fontaine", "Chevalier", "Tremblay"),
    ),
    (  # Germany, Austria, Switzerland
        ("Lukas", "Anna", "Felix", "Lena", "Jonas", "Marie", "Maximilian", "Johanna", "Tobias"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker"),
    ),
    (
        ("Katharina", "Florian", "Svenja", "Moritz", "Jana", "Stefan", "Franziska", "Niklas"),
        ("Hoffmann", "Schäfer", "Koch", "Richter", "Wolf", "Neumann", "Zimmermann", "Huber"),
    ),
    (  # the Netherlands, Flanders
        ("Daan", "Sanne", "Bram", "Fleur", "Jeroen", "Anouk", "Thijs", "Lotte", "Ruben"),
        ("de Jong", "Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Smit", "Mulder"),
    ),
    (
        ("Femke", "Joris", "Maaike", "Wouter", "Eline", "Pieter", "Ine"),
        ("de Boer", "Peeters", "Janssens", "Vermeulen", "Maes", "van Dijk", "Willems"),
    ),
    (  # the Nordic countries
        ("Erik", "Ingrid", "Lars", "Astrid", "Magnus", "Freya", "Nils", "Sigrid", "Mikkel"),
        ("Johansson", "Andersson", "Nilsson", "Larsen", "Hansen", "Olsen", "Nielsen", "Jensen"),
    ),
    (
        ("Sofie", "Aino", "Eero", "Saga", "Bjørn", "Elin", "Jussi", "Helmi", "Søren"),
        ("Lindqvist", "Korhonen", "Virtanen", "Berg", "Halvorsen", "Mäkinen", "Dahl", "Holm"),
    ),
    (  # Poland
        ("Piotr", "Agnieszka", "Tomasz", "Magdalena", "Łukasz", "Zofia", "Jakub", "Ewa"),
        ("Nowak", "Wójcik", "Kowalczyk", "Woźniak", "Mazur", "Krawczyk", "Kaczmarek", "Zając"),
    ),
    (
        ("Marek", "Katarzyna", "Paweł", "Joanna", "Krzysztof", "Małgorzata", "Wojciech"),
        ("Król", "Wieczorek", "Dudek", "Pawlak", "Michalak", "Sikora", "Baran"),
    ),
    (  # Ukraine
        ("Olena", "Andriy", "Iryna", "Dmytro", "Oksana", "Taras", "Nataliya", "Oleksandr"),
        ("Shevchenko", "Kovalenko", "Bondarenko", "Tkachenko", "Kravchenko", "Melnyk", "Boyko"),
    ),
    (
        ("Yuliya", "Serhiy", "Kateryna", "Mykola", "Halyna", "Bohdan"),
        ("Kovalchuk", "Savchuk", "Lysenko", "Marchenko", "Polishchuk", "Rudenko"),
    ),
    (  # Hungary, Romania
        ("Zsófia", "Bence", "Réka", "Gergely", "Dóra", "Ádám", "Andreea", "Mihai", "Ioana"),
        ("Nagy", "Kovács", "Tóth", "Szabó", "Horváth", "Varga", "Popescu", "Ionescu", "Popa"),
    ),
    (
        ("Alexandru", "Bianca", "Cristian", "Eszter", "Levente", "Roxana"),
        ("Dumitru", "Stan", "Constantin", "Farkas", "Balogh", "Munteanu"),
    ),
    (  # Italy
        ("Giulia", "Marco", "Francesca", "Luca", "Chiara", "Alessandro", "Matteo", "Federica"),
        ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci"),
    ),
    (
        ("Davide", "Martina", "Giorgio", "Valentina", "Simone", "Alessia", "Lorenzo"),
        ("Marino", "Greco", "Bruno", "Gallo", "Conti", "De Luca", "Mancini", "Lombardi"),
    ),
    (  # Spain, Portugal
        ("Lucía", "Javier", "Carmen", "Alejandro", "Marta", "Pablo", "Nerea", "Sergio"),
        ("García", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez", "Navarro"),
    ),
    (
        ("Inês", "João", "Beatriz", "Tiago", "Mariana", "Rui", "Catarina", "Duarte"),
        ("Silva", "Santos", "Ferreira", "Costa", "Oliveira", "Rodrigues", "Pereira", "Almeida"),
    ),
    (  # Latin America
        ("Valentina", "Mateo", "Camila", "Santiago", "Ximena", "Diego", "Guadalupe", "Joaquín"),
        ("Hernández", "González", "Ramírez", "Torres", "Flores", "Rivera", "Morales", "Castillo"),
    ),
    (
        ("Daniela", "Andrés", "Renata", "Emiliano", "Thiago", "Larissa", "Rafael", "Luana"),
        ("Vargas", "Mendoza", "Reyes", "Cruz", "Souza", "Carvalho", "Ribeiro", "Araújo"),
    ),
    (  # Greece, Cyprus
        ("Eleni", "Giorgos", "Dimitris", "Katerina", "Nikos", "Yannis", "Despina", "Kostas"),
        ("Georgiou", "Nikolaou", "Christodoulou", "Oikonomou", "Ioannou", "Konstantinou"),
    ),
    (
        ("Athena", "Panagiotis", "Stella", "Andreas", "Chrysa", "Stavros"),
        ("Charalambous", "Demetriou", "Antoniou", "Savva", "Alexiou", "Petrou"),
    ),
    (  # Turkey
        ("Elif", "Emre", "Zeynep", "Mehmet", "Ayşe", "Burak", "Deniz", "Can", "Selin"),
        ("Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Aydın", "Öztürk", "Arslan"),
    ),
    (
        ("Murat", "Ece", "Kerem", "Merve", "Onur", "Gizem"),
        ("Doğan", "Kılıç", "Aslan", "Koç", "Kurt", "Özdemir"),
    ),
    (  # the Arab world
        ("Amira", "Omar", "Layla", "Youssef", "Fatima", "Karim", "Nour", "Hassan", "Yasmin"),
        ("Haddad", "Khoury", "Mansour", "Nasser", "Saleh", "Hamdan", "Aziz", "Farouk"),
    ),
    (
        ("Tariq", "Salma", "Khalid", "Rania", "Samir", "Mariam", "Walid", "Hala", "Mehdi"),
        ("Benali", "El Amrani", "Sabbagh", "Qasim", "Abboud", "Saadi", "Bouazza", "Najjar"),
    ),
    (  # Iran
        ("Dariush", "Shirin", "Reza", "Leila", "Arash", "Parisa", "Kian", "Mina", "Nasrin"),
        ("Hosseini", "Ahmadi", "Karimi", "Rahimi", "Mohammadi", "Jafari", "Rostami", "Sadeghi"),
    ),
    (  # Israel
        ("Noa", "Eitan", "Tamar", "Yonatan", "Maya", "Avi", "Shira", "Ori", "Yael"),
        ("Cohen", "Levi", "Mizrahi", "Peretz", "Biton", "Friedman", "Katz", "Avraham", "Dahan"),
    ),
    (  # India
        ("Priya", "Arjun", "Ananya", "Rahul", "Kavya", "Vikram", "Deepa", "Rohan", "Sunita"),
        ("Sharma", "Patel", "Gupta", "Kumar", "Reddy", "Iyer", "Nair", "Menon", "Desai"),
    ),
    (
        ("Aditya", "Meera", "Sanjay", "Lakshmi", "Karthik", "Divya", "Harpreet", "Gurpreet"),
        ("Mehta", "Chatterjee", "Banerjee", "Krishnan", "Rao", "Joshi", "Singh", "Gill"),
    ),
    (  # Pakistan, Bangladesh
        ("Ayesha", "Imran", "Sana", "Bilal", "Hina", "Faisal", "Nadia", "Zain", "Tahmina"),
        ("Khan", "Ahmed", "Hussain", "Malik", "Qureshi", "Chaudhry", "Butt", "Rahman"),
    ),
    (
        ("Rafiq", "Farhana", "Asif", "Shabnam", "Junaid", "Nusrat"),
        ("Islam", "Hossain", "Uddin", "Siddiqui", "Akhtar", "Mirza"),
    ),
    (  # China, Hong Kong, Singapore, Malaysia
        ("Wei", "Mei", "Jun", "Ling", "Hao", "Xin", "Yan", "Jian", "Lei", "Fang", "Ying"),
        ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu"),
    ),
    (
        ("Ka Yan", "Wing", "Siew Ling", "Kok Wai", "Hui Min", "Boon Keat"),
        ("Wong", "Chan", "Ng", "Lim", "Tan", "Lau", "Cheung", "Goh"),
    ),
    (  # Japan
        ("Haruto", "Yui", "Sota", "Aoi", "Ren", "Hina", "Kenji", "Yuki", "Takeshi", "Sakura"),
        ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura"),
    ),
    (  # Korea
        ("Min-jun", "Seo-yeon", "Ji-ho", "Ha-eun", "Do-yun", "Su-bin", "Hyun-woo", "Eun-ji"),
        ("Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon", "Jang", "Han", "Shin"),
    ),
    (  # Vietnam
        ("Linh", "Minh", "Thao", "Huy", "Lan", "Quang", "Trang", "Duc", "Hoa"),
        ("Nguyen", "Tran", "Le", "Pham", "Hoang", "Vu", "Dang", "Bui", "Do"),
    ),
    (  # the Philippines
        ("Maricel", "Jomar", "Kristine", "Rodel", "Angelica", "Jericho", "Rowena", "Arnel"),
        ("Dela Cruz", "Bautista", "Ramos", "Aquino", "Villanueva", "Santiago", "Mercado"),
    ),
    (  # Indonesia, Thailand
        ("Putri", "Budi", "Dewi", "Agus", "Sari", "Rizky", "Somchai", "Nattaya", "Anan"),
        ("Wijaya", "Santoso", "Kusuma", "Hidayat", "Saputra", "Setiawan", "Srisuk", "Wongsakul"),
    ),
    (  # Nigeria, Ghana
        ("Chinedu", "Ngozi", "Oluwaseun", "Adaeze", "Emeka", "Funmilayo", "Tunde", "Amaka"),
        ("Okafor", "Adeyemi", "Okonkwo", "Balogun", "Eze", "Nwosu", "Adebayo", "Obi", "Bello"),
    ),
    (
        ("Kwame", "Abena", "Kofi", "Ama", "Yaw", "Efua", "Kojo", "Akosua", "Ibrahim", "Aisha"),
        ("Mensah", "Asante", "Boateng", "Owusu", "Osei", "Appiah", "Danjuma", "Addo"),
    ),
    (  # East Africa
        ("Wanjiru", "Amani", "Baraka", "Zawadi", "Achieng", "Kipchoge", "Abebe", "Tigist"),
        ("Otieno", "Kamau", "Mwangi", "Njoroge", "Mutua", "Tesfaye", "Bekele", "Haile"),
    ),
    (  # Southern Africa
        ("Tendai", "Thabo", "Naledi", "Sipho", "Lerato", "Nomvula", "Kagiso", "Zanele"),
        ("Moyo", "Ndlovu", "Dlamini", "Nkosi", "Mokoena", "Khumalo", "Mahlangu", "Sithole"),
    ),
    (  # Aotearoa, the Pacific
        ("Aroha", "Tama", "Mere", "Nikau", "Hemi", "Moana", "Sione", "Mele", "Tavita"),
        ("Ngata", "Parata", "Te Rangi", "Tuilagi", "Fifita", "Tupou", "Faleolo", "Tapsell"),
    ),
)

#: Every first and every last name, each once, for the mixed ones.
FIRST_NAMES = tuple(dict.fromkeys(name for firsts, _ in PEOPLE for name in firsts))
LAST_NAMES = tuple(dict.fromkeys(name for _, lasts in PEOPLE for name in lasts))

#: How often a first name and a last name come from anywhere.
MIXED = 0.2

#: The first groups, in this order; the others come from ``MORE_GROUPS`` in a seeded order.
FIRST_GROUPS = ("Sales", "Support", "Billing")
MORE_GROUPS = (
    "Renewals",
    "Retention",
    "Accounts",
    "Bookings",
    "Claims",
    "Collections",
    "Complaints",
    "Customer care",
    "Deliveries",
    "Enquiries",
    "Helpdesk",
    "Onboarding",
    "Orders",
    "Payments",
    "Returns",
    "Switchboard",
    "Warranty",
    "Appointments",
    "Business sales",
    "Cancellations",
    "Faults",
    "Installations",
    "Loyalty",
    "Home moves",
    "Upgrades",
    "Roaming",
    "Fraud",
    "Credit control",
    "Dispatch",
    "Partners",
    "Service desk",
    "Account managers",
)

#: A path after the group it is for: the first is ``Sales line``, the second ``Sales priority line``.
PATH_KINDS = ("line", "priority line", "overflow", "callbacks", "VIP line", "out of hours")

#: The make-busy reasons the simulated floor gives (codes 1 to 9, on E).
MAKE_BUSY_REASONS: dict[int, str] = {
    1: "Lunch",
    2: "Break",
    3: "Training",
    4: "Meeting",
    5: "Coaching",
    6: "Admin",
    7: "Email",
    8: "Callback",
    9: "Team huddle",
}


def person(rng: random.Random) -> str:
    """A first name and a last name: mostly from one part of the world, else from anywhere."""
    if rng.random() < MIXED:
        return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    firsts, lasts = rng.choice(PEOPLE)
    return f"{rng.choice(firsts)} {rng.choice(lasts)}"


def people(count: int, rng: random.Random) -> list[str]:
    """``count`` different names of people."""
    if not 0 <= count <= len(FIRST_NAMES) * len(LAST_NAMES):
        raise ValueError(f"cannot make up {count} different names")
    seen: set[str] = set()  # membership only: the order comes from the draws
    names: list[str] = []
    while len(names) < count:
        name = person(rng)
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def group_names(count: int, rng: random.Random) -> list[str]:
    """``count`` different department names: Sales, Support, Billing, then seeded ones.

    Past the end of the list the names come round again, numbered: ``Sales 2``.
    """
    more = list(MORE_GROUPS)
    rng.shuffle(more)
    pool = [*FIRST_GROUPS, *more]
    return [
        pool[i % len(pool)] + (f" {i // len(pool) + 1}" if i >= len(pool) else "")
        for i in range(count)
    ]


def path_names(serving: Mapping[str, Sequence[str]], groups: Mapping[str, str]) -> dict[str, str]:
    """Each path after the first group serving it: ``Sales line``, ``Sales priority line``.

    ``serving`` gives each path's groups, ``groups`` their names; a path no
    named group serves is a ``Main line``.
    """
    named: dict[str, str] = {}
    taken: dict[str, int] = {}  # a group's name -> how many paths are named after it
    for path, by in serving.items():
        group = groups.get(by[0], "Main") if by else "Main"
        k = taken.get(group, 0)
        taken[group] = k + 1
        named[path] = f"{group} {PATH_KINDS[k] if k < len(PATH_KINDS) else f'line {k + 1}'}"
    return named


def floor_names(plan: FloorPlan, rng: random.Random) -> Names:
    """Names for every agent, group and path of ``plan``, drawn from ``rng``.

    Each agent is a member of the group the plan puts it in, so that a view
    of some groups (``/?groups=610``) shows their agents.
    """
    group_of = {agent: group for group, agents in plan.groups.items() for agent in agents}
    agent_ids = list(plan.home_dns)  # every agent, in the floor's order
    agents = {
        agent: AgentEntry(name=name, groups=(group_of[agent],) if agent in group_of else ())
        for agent, name in zip(agent_ids, people(len(agent_ids), rng))
    }
    groups = dict(zip(plan.groups, group_names(len(plan.groups), rng)))
    return Names(
        agents=agents,
        groups=groups,
        paths=path_names(plan.paths, groups),
        make_busy_reasons=MAKE_BUSY_REASONS,
    )
