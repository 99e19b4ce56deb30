"""Run by the DataJoint 0.14 environment of the legacy tests (never imported by the test process).

``python script_014.py request.json``; the request names a task:

* ``create``: declare nnfabrik's tables (the definitions of nnfabrik's ``main.py`` and
  ``templates/trained_model.py``) and sinzlab/mei-style MEI tables with DataJoint 0.14 itself, and insert the
  rows of the pickle ``rows`` (attachments given as file paths);
* ``read``: fetch every row of every table of the schemas with DataJoint 0.14 (attachments downloaded) into
  the pickle ``output``: what a lab's DataJoint 0.14 code gets.
"""

import json
import pickle
import sys
import tempfile
from pathlib import Path

import datajoint as dj

FABRIKANT = """
fabrikant_name: varchar(32)       # Name of the contributor that added this entry
---
full_name="": varchar(128) # full name of the person
email: varchar(64)         # e-mail address
affiliation: varchar(32)   # conributor's affiliation (e.g. Sinz Lab)
dj_username: varchar(64)   # DataJoint username
"""
MODEL = """
model_fn:                   varchar(128)   # name of the model function
model_hash:                 varchar(64)   # hash of the model configuration
---
model_config:               longblob      # model configuration to be passed into the function
-> Fabrikant.proj(model_fabrikant='fabrikant_name')
model_comment='' :          varchar(256)   # short description
model_ts=CURRENT_TIMESTAMP: timestamp     # UTZ timestamp at time of insertion
"""
DATASET = """
dataset_fn:                     varchar(64)    # name of the dataset loader function
dataset_hash:                   varchar(64)    # hash of the configuration object
---
dataset_config:                 longblob       # dataset configuration object
-> Fabrikant.proj(dataset_fabrikant='fabrikant_name')
dataset_comment='' :            varchar(256)    # short description
dataset_ts=CURRENT_TIMESTAMP:   timestamp      # UTZ timestamp at time of insertion
"""
TRAINER = """
trainer_fn:                     varchar(64)     # name of the Trainer loader function
trainer_hash:                   varchar(64)     # hash of the configuration object
---
trainer_config:                 longblob        # training configuration object
-> Fabrikant.proj(trainer_fabrikant='fabrikant_name')
trainer_comment='' :            varchar(256)     # short description
trainer_ts=CURRENT_TIMESTAMP:   timestamp       # UTZ timestamp at time of insertion
"""
SEED = """
seed:   int     # Random seed that is passed to the model- and dataset-builder
"""
TRAINED_MODEL = """
# Trained models
-> Model
-> Dataset
-> Trainer
-> Seed
---
comment='':                        varchar(768) # short description
score:                             float        # loss
output:                            longblob     # trainer object's output
->[nullable] Fabrikant
trainedmodel_ts=CURRENT_TIMESTAMP: timestamp    # UTZ timestamp at time of insertion
"""
MODEL_STORAGE = """
# Contains the models state dict, stored externally.
-> master
---
model_state:            attach@{store}
"""
MEI_METHOD = """
# contains methods for generating MEIs and their configurations.
method_fn                           : varchar(64)   # name of the method function
method_hash                         : varchar(32)   # hash of the method config
---
method_config                       : longblob      # method configuration object
method_ts       = CURRENT_TIMESTAMP : timestamp     # UTZ timestamp at time of insertion
method_comment                      : varchar(256)  # a short comment describing the method
"""
MEI_SEED = """
# contains seeds used to make the MEI generation process reproducible
mei_seed    : int   # MEI seed
"""
MEI_SELECTOR = """
# contains information that can be used to map a neuron's id to its corresponding integer position in the output of
# the model.
-> fabrik.Dataset
neuron_id       : smallint unsigned # unique neuron identifier
---
neuron_position : smallint unsigned # integer position of the neuron in the model's output
session_id      : varchar(13)       # unique session identifier
"""
MEI_TABLE = """
# contains maximally exciting images (MEIs)
-> MEIMethod
-> fabrik.TrainedModel
-> MEISelector
-> MEISeed
---
mei                 : attach@{store}  # the MEI as a tensor
score               : float         # some score depending on the used method function
output              : attach@{store}  # object returned by the method function
"""
MEI_ARRAY = """
# the MEI as an array (a lab's own table with an external blob)
-> MEI
---
mei_array           : blob@{store}   # the MEI as a numpy array
notes               : attach         # an internal attachment
run_id              : uuid           # a uuid
"""


def configure(request):
    dj.config["database.host"] = request["host"]
    dj.config["database.port"] = int(request["port"])
    dj.config["database.user"] = request["user"]
    dj.config["database.password"] = request["password"]
    dj.config["safemode"] = False
    dj.config["database.use_tls"] = False
    dj.config["stores"] = request["stores"]
    dj.conn()


def declare(request):
    fabrik_schema = dj.schema(request["fabrik"])
    model_store, mei_store, array_store = request["model_store"], request["mei_store"], request["array_store"]

    @fabrik_schema
    class Fabrikant(dj.Manual):
        definition = FABRIKANT

    context = {"Fabrikant": Fabrikant}

    @fabrik_schema
    class Seed(dj.Manual):
        definition = SEED

    @fabrik_schema
    class Model(dj.Manual):
        definition = MODEL

    @fabrik_schema
    class Dataset(dj.Manual):
        definition = DATASET

    @fabrik_schema
    class Trainer(dj.Manual):
        definition = TRAINER

    @fabrik_schema
    class TrainedModel(dj.Computed):
        definition = TRAINED_MODEL

        class ModelStorage(dj.Part):
            definition = MODEL_STORAGE.format(store=model_store)

    tables = dict(context, Seed=Seed, Model=Model, Dataset=Dataset, Trainer=Trainer, TrainedModel=TrainedModel)
    tables["TrainedModel.ModelStorage"] = TrainedModel.ModelStorage

    class fabrik:  # noqa: N801 - what the MEI tables' foreign keys name (-> fabrik.Dataset)
        pass

    fabrik.Dataset, fabrik.TrainedModel = Dataset, TrainedModel
    mei = dj.schema(request["mei"])

    @mei
    class MEIMethod(dj.Lookup):
        definition = MEI_METHOD

    @mei
    class MEISeed(dj.Lookup):
        definition = MEI_SEED

    @mei
    class MEISelector(dj.Computed):
        definition = MEI_SELECTOR

    @mei
    class MEI(dj.Computed):
        definition = MEI_TABLE.format(store=mei_store)

    @mei
    class MEIArray(dj.Computed):
        definition = MEI_ARRAY.format(store=array_store)

    tables.update(MEIMethod=MEIMethod, MEISeed=MEISeed, MEISelector=MEISelector, MEI=MEI, MEIArray=MEIArray)
    return tables


def create(request):
    tables = declare(request)
    with open(request["rows"], "rb") as file:
        rows = pickle.load(file)
    for name, table_rows in rows.items():
        tables[name].insert(table_rows, allow_direct_insert=True)
    return {"tables": sorted(rows)}


def plain(value, directory):
    """A fetched value made picklable without DataJoint: downloaded attachments as (name, bytes)."""
    if isinstance(value, str) and value.startswith(str(directory)):
        path = Path(value)
        return {"attachment": path.name, "data": path.read_bytes()}
    return value


def read(request):
    result = {}
    with tempfile.TemporaryDirectory() as directory:
        for schema_name in request["schemas"]:
            schema = dj.Schema(schema_name, create_schema=False, create_tables=False)
            for table_name in schema.list_tables():
                table = dj.FreeTable(dj.conn(), f"`{schema_name}`.`{table_name}`")
                rows = []
                for number, key in enumerate(table.fetch("KEY", order_by=table.primary_key)):
                    folder = Path(directory, f"{table_name}-{number}")  # one folder per row: original file names
                    folder.mkdir()
                    row = (table & key).fetch1(download_path=str(folder))
                    rows.append({name: plain(value, folder) for name, value in row.items()})
                result[f"{schema_name}.{table_name}"] = rows
    with open(request["output"], "wb") as file:
        pickle.dump(result, file)
    return {"tables": sorted(result), "version": dj.__version__}


def main():
    request = json.loads(Path(sys.argv[1]).read_text())
    configure(request)
    result = {"create": create, "read": read}[request["task"]](request)
    Path(request["result"]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
