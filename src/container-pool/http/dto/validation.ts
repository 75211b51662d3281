import { registerDecorator, ValidateIf, ValidationOptions } from 'class-validator';

/** Like @IsOptional(), but only an absent field is skipped: `null` is validated (and rejected) as a value. */
export function IsOptionalDefined(): PropertyDecorator {
  return ValidateIf((_o, value) => value !== undefined);
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** An object whose keys are environment variable names and whose values are strings. */
export function IsEnvRecord(options?: ValidationOptions): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'isEnvRecord',
      target: target.constructor,
      propertyName: propertyName as string,
      options: {
        message:
          '$property must be an object mapping variable names ([A-Za-z_][A-Za-z0-9_]*) to string values',
        ...options,
      },
      validator: {
        validate(value: unknown): boolean {
          if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
          return Object.entries(value).every(
            ([k, v]) => ENV_NAME.test(k) && typeof v === 'string' && !v.includes('\0'),
          );
        },
      },
    });
}
