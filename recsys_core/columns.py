"""Column names, table names and reason tags shared by every step (one place, no string literals)."""

USER_ID = "user_id"
ITEM_ID = "item_id"
RATING = "rating"
TIMESTAMP = "timestamp"
COUNTRY = "country"
AGE = "age"
GENDER = "gender"
TITLE = "title"
YEAR = "year"
GENRES = "genres"

# input tables
USERS = "users"
ITEMS = "items"
INTERACTIONS = "interactions"
INPUT_TABLES = (USERS, ITEMS, INTERACTIONS)

# feature columns
RATING_COUNT = "rating_count"
AVG_RATING = "avg_rating"
RATED_AT = (
    "rated_at"  # mean time (years since 1970) an item was interacted with: its era of popularity
)
ACTIVE_AT = "active_at"  # mean time of a user's interactions
LAST_ACTIVE_AT = "last_active_at"  # time of a user's newest interaction
TASTE_POPULARITY = "taste_popularity"  # mean log interaction count of the items a user chose
TASTE_YEAR = "taste_year"  # mean release year of the items a user chose
USER_GENRE_PREFIX = "ug_"  # per-genre average rating of a user
USER_GENRE_SHARE_PREFIX = "us_"  # share of a user's interactions in each genre
ITEM_GENRE_PREFIX = "g_"  # genre one-hot of an item
# every per-genre feature column starts with one of these; 0 in one means "nothing in this genre"
GENRE_PREFIXES = (USER_GENRE_PREFIX, USER_GENRE_SHARE_PREFIX, ITEM_GENRE_PREFIX)
GENDER_PREFIX = "gender_"
AGE_MISSING = "age_missing"
YEAR_MISSING = "year_missing"

# columns of the datasets the steps write
EMBEDDING = "embedding"
NEIGHBOR_ID = "neighbor_id"
DISTANCE = "distance"
RANK = "rank"
SCORE = "score"
PREDICTED_RATING = "predicted_rating"
REASON = "reason"
REASONS = "reasons"
MODEL_VERSION = "model_version"
RUN_ID = "run_id"
DS = "ds"

# why a candidate was retrieved: "<tag>:<value>", e.g. "similar_to:318", "top_genre:Drama"
REASON_SIMILAR = "similar_to"
REASON_GENRE = "top_genre"
REASON_COUNTRY = "top_country"
REASON_GLOBAL = "top_global"  # country list for users whose region is unknown
REASON_POPULAR = "popular_fill"  # tops up users whose other sources ran dry
REASON_NEW = "new"  # a new arrival (no interactions yet) the towers chose for the user, at ranking

UNKNOWN_COUNTRY = "unknown"
