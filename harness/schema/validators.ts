/**
 * JSON Schema validators, compiled once per process and only when first used: compiling is the
 * slow part of Ajv (about 0.1 s for the Admin API's schemas), and most commands never validate.
 * The build (bin/build.js) compiles the sets of the modules it lists to standalone code ahead of
 * time, so the built CLI does not load Ajv's compiler at all. A set is the only export of its
 * module and its schemas are plain data, so the build can load the module on its own.
 */
import { Ajv, type Options, type ValidateFunction } from "ajv";

export interface ValidatorSet<K extends string> {
  /** The compiled validators, by name. */
  (): Record<K, ValidateFunction>;
  readonly options: Options;
  readonly schemas: Readonly<Record<K, object>>;
}

export function defineValidators<K extends string>(options: Options, schemas: Record<K, object>): ValidatorSet<K> {
  let compiled: Record<K, ValidateFunction> | undefined;
  const get = (): Record<K, ValidateFunction> => {
    if (!compiled) {
      const ajv = new Ajv(options);
      compiled = Object.fromEntries(Object.entries<object>(schemas).map(([name, schema]) => [name, ajv.compile(schema)])) as Record<K, ValidateFunction>;
    }
    return compiled;
  };
  return Object.assign(get, { options, schemas });
}
