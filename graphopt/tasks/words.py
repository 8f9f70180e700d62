"""A built-in vocabulary of common lowercase English words, for the word-sorting generator.

The words are grouped roughly by length only to keep the list readable; `words_by_length` buckets
them by their real length. The list is kept wide across lengths (2 to 17 letters) because the
official BBH word-sorting set draws word lengths from 1 to 17 letters, with a mean near 7.
"""

from __future__ import annotations

__all__ = ["WORDS", "vocabulary", "words_by_length"]

from functools import cache

WORDS = """
ox go up on in at by we me us do be it an or to of he my no so ax id

ant ape arm art ash axe bag bat bay bed bee bin bit bog bow box boy bud bug bun bus cab can cap car
cat cow cub cup cut dam day den dew dig dog dot dry dug ear egg elk elm end eye fan far fat fax fee
fig fin fir fit fix fly fog fox fry fun fur gap gas gem gum gut hat hay hen hip hog hop hot hub hue
hut ice ink inn ivy jam jar jaw jet jog joy jug keg key kid kin kit lab lad lap law lay leg lid lip
log low mad map mat mix mob mop mud mug nap net new nod nut oak oar oat odd oil old owl pad pan paw
pea pen pet pie pig pin pit pod pot pub pup rag ram rat raw ray red rib rim rod rot row rub rug sad
sap saw sea set sew shy sip sit sky sly sob son soy spy sum sun tab tag tan tap tar tax tea ten tie
tin tip toe ton top toy tub tug urn van vat vet wag war wax web wet wig win wit yak yam yew zip zoo

acid aunt baby bake ball band bank barn base bath bead beak beam bean bear beef bell belt bike bird
boat bold bolt bone book boot bowl brag brim bulb bull cage cake calm camp cape card cart cash cave
cell chef chin city clay clip club coal coat code coin cold cook cord corn crab crew crop crow cube
curl dark dawn deer desk dice dish dive dock door dove duck dune dust earn east echo edge epic face
farm fern fish flag foam fold fork fort frog fuel gate gift glow glue goat gold golf gown grin gulf
hail hand harp hawk heap herb hill hive hole hood hook horn hose idea iron isle jade jazz jeep joke
jury kelp kite knee knot lace lake lamb lamp lane leaf lens lily lime lion loaf lock loom lung mask
mast maze meal milk mint mist mole moon moss moth nail neck nest news note oven pace page pail palm
park path peak pear pipe plum poem pond pony pool port pump quiz raft rain reef rice ring road robe
rock roof rope rose ruby rust sail salt sand seal seed ship shoe silk sink slab sled snow soap sock
sofa soil song soup star stem swan tank tent tide tile toad tool tour tree tube tuna vase veil vest
vine wall wand wave wolf wood wool worm yard yarn zinc zone

acorn actor adobe agent alarm album alley amber angel angle ankle apple apron arrow attic badge bagel
baker basin beach beard beast berry bench bison blade blank blaze bloom board boost booth brain brake
brass bread brick bride brook broom brush cabin cable camel canal candy canoe cargo chain chair chalk
charm chart chess chest chief child cider cliff clock cloud clown coach coast cobra comet coral couch
crane crate cream crown crust cycle daisy dance delta depot diary dough drama dream drill eagle earth
elbow ember fable fairy feast fence ferry fever field flame flask fleet flint flood flour flute focus
forge frame frost fruit giant glass globe glove goose grain grape grass gravy guard guest guide habit
heart hedge heron honey horse hotel house igloo image index ivory jelly jewel judge juice kayak knife
koala label ladle latch lemon level light linen llama lodge lunar mango maple march medal melon metal
meter model motor mound mouse mouth music nerve noble novel nurse ocean olive onion opera orbit otter
paint panel paper party pasta peach pearl pedal penny piano pilot pitch pizza plane plant plaza poppy
porch pride prism pupil puppy queen quilt radar radio raven razor ridge river robin rover royal salad
sauce scale scarf scout shade shark sheep shelf shell shirt skate skirt skull slate sleet slope smoke
snack snail solar spade spark spice spoon squad stamp steam steel stone stool storm stove straw sugar
swamp sword table thorn tiger toast torch tower trail train tribe truck tulip uncle unity valve vapor
vault viola vital voice wagon whale wheat wheel witch woman yacht zebra

accent action advice almond anchor animal answer antler archer artist autumn badger ballet bamboo
banana banner barrel basket beacon beaver bottle branch breeze bridge bronze bubble bucket bundle
butter button cactus camera candle canvas carpet carrot castle cattle cellar cement cereal cherry
chisel circle clergy closet cobalt coffee collar copper corner cotton cougar coyote cradle crayon
cursor dagger dancer debate desert dinner doctor dollar donkey dragon drawer effort empire engine
falcon farmer fabric fellow finger forest fossil fridge galaxy garage garden garlic ginger glider
goblet gravel guitar hammer harbor hazard helmet hermit hockey hollow hunter icicle insect island
jacket jaguar jersey jigsaw jungle kennel kettle kidney kitten ladder lagoon launch lawyer legend
lentil lesson letter lizard locket magnet mammal marble market meadow mellow mirror mitten monkey
mortar muffin museum napkin needle nickel noodle number oyster paddle palace parade parrot pencil
pepper pillow pirate planet pocket poetry potato powder puzzle rabbit racket ribbon rocket saddle
salmon sample saucer school season shadow shovel shrimp signal silver sketch sleeve spider spiral
sponge spring square squash statue stream street string studio summer sunset supper switch symbol
tablet teapot temple tennis throne ticket timber tomato tongue toucan tunnel turkey turtle valley
velvet violin voyage walnut walrus window winter wizard yogurt zipper cowboy tuxedo

abandon academy account acrobat address admiral airport alchemy ancient apricot archive arrival
article auction avocado balcony bandage barbell bargain battery bedroom biscuit blanket blossom
boulder bracket brownie buffalo cabinet caramel cartoon catalog ceiling century chamber channel
chapter charity chicken chimney citizen climate clothes cluster coconut collage college comfort
compass concert cottage counter country courage cricket crystal culture cupcake curtain cushion
custard dentist diamond dolphin drizzle dungeon eclipse element embassy emerald evening example
factory fantasy fashion feather ferment fiction firefly flannel florist fortune freedom furnace
gallery garment gazelle giraffe glacier granite gravity grocery hamster harvest heather helpful
highway history holiday horizon hostage husband iceberg illness imagine insight jackpot javelin
journal journey justice kingdom kitchen lantern leather lettuce library lobster luggage machine
mansion meaning measure mineral miracle mission mixture monster morning mustard mystery network
nostril nursery oatmeal octopus orchard organic ostrich outcome package painter pajamas panther
parsley partner passage peacock pelican penguin pension physics picture pilgrim pioneer plaster
plastic popcorn portion poultry prairie premium printer problem program project pumpkin pyramid
quarter raccoon railway rainbow reactor recital scholar science scooter seafood section serpent
service shelter sheriff shuttle society soldier speaker spinach stadium station sparrow sunrise
surgeon teacher thunder tornado tractor traffic trumpet unicorn uniform vampire venture village
vinegar volcano warrior weather website wedding whistle wildcat witness bicycle pancake bathtub

absolute accident aircraft airplane alphabet aluminum ambition anteater antelope apparent aquarium
argument armchair artifact assembly backpack bacteria baseball basement bathroom birthday blizzard
bookcase boundary bracelet building business calendar campfire cardinal carnival ceremony champion
chipmunk chestnut children cinnamon clarinet climbing clothing cocktail compound computer concrete
coverage creature crescent cucumber cupboard daughter decision delivery designer dinosaur doorbell
doughnut dumpling election elephant elevator employee engineer envelope equation estimate evidence
exercise festival firework flamingo football fountain fraction friction frontier gardener generous
goldfish graduate grateful hardware headline hedgehog heritage homework hospital ignition industry
infantry invasion junction keyboard kindness landlord language laughter lavender learning lemonade
lifeboat listener location magazine mandolin marathon mattress medicine memorial midnight minister
molecule mosquito mountain mushroom musician national necklace notebook novelist ointment operator
opponent overcoat painting panorama paradise parakeet particle pavement pharmacy physical pinecone
platform pleasure plumbing portrait position possible powerful princess property province quantity
question railroad reindeer religion reporter research resident resource response reversal romantic
sailboat sandwich sapphire scenario schedule scissors scrutiny seashell sentence shepherd shipment
sidewalk skeleton slippers snowball software spectrum squirrel stallion starfish strategy strength
struggle suitcase sunlight surprise swimming teaspoon terminal textbook thousand tortoise treasure
triangle umbrella uncommon universe vacation vanguard vineyard windmill wireless woodland yearbook
zucchini barbecue merchant ornament scorpion

adventure afternoon alligator ambulance apartment astronaut attention authority avalanche backstage
badminton blueberry bookshelf boulevard butterfly cafeteria calculate carpenter cathedral celebrity
chameleon character chemistry chocolate cigarette classroom clockwork community companion composure
condition conductor continent courtyard crocodile crossword curiosity dandelion democracy detective
diplomacy dragonfly education elsewhere emergency encounter equipment evolution excellent explosion
fireplace fisherman footprint forgotten framework furniture gardening geography gentleman gladiator
gymnasium hamburger happiness harmonica headphone highlight honeycomb horseback hurricane important
incentive innocence insurance invention jellyfish judgement kilometer knowledge landscape lifestyle
lightning limestone magnitude marmalade megaphone microwave migration milestone moonlight narrative
necessary newspaper nightmare nutrition obsession orchestra pineapple porcupine president principle
professor quicksand raspberry rectangle reflector relevance sandstone satellite scarecrow scientist
secretary signature snowflake spaghetti sculpture stairwell submarine sunflower telephone telescope
testimony thesaurus timetable toothpick tradition transport treadmill undertake universal volunteer
waterfall whirlpool wonderful xylophone agreement guidebook hairbrush horoscope passenger porcelain
saxophone speedboat wallpaper whirlwind lawnmower discovery

accountant accomplice adaptation apprentice background binoculars blackboard blacksmith bookkeeper
borderline bridesmaid broomstick calculator cappuccino cartoonist chandelier chimpanzee cloudburst
collection commitment comparison compassion confidence connection constraint contractor controller
convention correction crossroads cultivator curriculum dictionary difference dishwasher disclosure
discussion earthquake efficiency electrical employment engagement enterprise expedition experience
experiment expression fingernail flashlight floodlight footbridge foundation friendship generation
government gooseberry grapefruit greenhouse gymnastics handlebars headmaster helicopter historical
houseplant illustrate impression incubation indication ingredient inspection instrument investment
invitation lighthouse literature lumberjack management mastermind microphone motorcycle mouthpiece
navigation needlework newsletter occupation paintbrush parliament perception photograph playground
population possession prediction procession production protection quarantine reflection relaxation
reputation restaurant revolution rhinoceros sandcastle scoreboard silhouette skateboard spacecraft
strawberry successful sunglasses supervisor tablespoon television tenderness thermostat tournament
trampoline transition tumbleweed underwater university vegetarian volleyball waterproof wilderness
windshield woodpecker atmosphere basketball chatterbox cheesecake typewriter upholstery watermelon

achievement acupuncture adolescence agriculture anniversary application appointment archaeology
arrangement association battlefield birdwatcher bodybuilder bookkeeping calculation caterpillar
cauliflower celebration certificate circulation combination comfortable communicate competition
concentrate consequence contraption cooperation countryside declaration demonstrate description
destination development electricity environment examination expectation explanation fingerprint
firefighter forgiveness gingerbread grasshopper grandmother handwriting hummingbird imagination
independent information inspiration instruction interesting investigate kitchenette marshmallow
masterpiece measurement millionaire nightingale observation observatory opportunity orientation
paperweight participant performance personality philosopher photography pomegranate preparation
probability proposition publication quarterback rattlesnake reservation resignation responsible
screwdriver shipbuilder snowboarder spreadsheet stethoscope storyteller subtraction switchboard
temperature thunderbolt translation transparent undertaking vaccination wheelbarrow electrician

acceleration accomplished agricultural announcement anthropology appreciation architecture
availability bibliography biodiversity breakthrough butterscotch championship chiropractor
circumstance civilization commencement commissioner compensation concentrated conservation
considerable construction contemporary contribution conversation coordination distribution
embarrassing encyclopedia enthusiastic entrepreneur headquarters hypothetical illustration
immeasurable independence installation instrumental intelligence intervention kindergarten
manufacturer mathematical metropolitan motorcyclist neighborhood nevertheless organization
photographer practitioner preservation questionable recreational refrigerator registration
relationship reproduction satisfaction scriptwriter spokesperson strawberries subscription
thanksgiving thunderstorm transmission unemployment veterinarian frankincense illumination
kaleidoscope

accessibility accommodation administrator archaeologist assassination biotechnology certification
circumference collaboration communication comprehension concentration confectionery consciousness
consideration contamination craftsmanship demonstration determination encouragement entertainment
environmental extraordinary grandchildren granddaughter hallucination hydroelectric impersonation
inconvenience investigation knowledgeable manufacturing mathematician meteorologist participation
philosophical precipitation questionnaire refrigeration reinforcement sophisticated unfortunately
whistleblower qualification

accountability administration characteristic circumstantial constitutional correspondence
discrimination identification infrastructure interpretation multiplication pharmaceutical
photosynthesis rehabilitation recommendation representative responsibility superintendent
transportation unconventional

characteristics entrepreneurial internationally interchangeable photojournalism procrastination
recommendations

extraterrestrial incomprehensible irresponsibility misunderstanding uncharacteristic
disproportionate institutionalize

counterproductive indistinguishable telecommunication interdisciplinary
"""


@cache
def vocabulary() -> tuple[str, ...]:
    """All distinct words of `WORDS`, sorted."""
    return tuple(sorted(set(WORDS.split())))


@cache
def words_by_length() -> dict[int, tuple[str, ...]]:
    """The vocabulary bucketed by word length: {length: (words, ...)}."""
    buckets: dict[int, list[str]] = {}
    for word in vocabulary():
        buckets.setdefault(len(word), []).append(word)
    return {length: tuple(words) for length, words in sorted(buckets.items())}
